"""The ZakOps HITL API client: assess risk, request approval, wait for the decision."""

__version__ = "0.1.0"

__all__ = ["__version__"]
