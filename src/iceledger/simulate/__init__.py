"""The strategy simulator: what a volume quota or a targeted strategy does to detention, cost and
removals, with every part of the model estimated from the warehouse (estimate.py), two solvers
that must agree (solve.py: steady state by Little's law, and a stochastic discrete-day
simulation), named and user-defined strategies (strategies.py) and a backtest (backtest.py).
docs/methodology.md, "Strategy simulator", describes the model and what it cannot say."""
