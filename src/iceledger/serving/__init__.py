"""What the report and the dashboard share: metric results, charts, suppression."""
