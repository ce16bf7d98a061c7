"""iceledger: sourced, documented numbers from the public record of U.S. immigration enforcement."""

__version__ = "0.1.0"
