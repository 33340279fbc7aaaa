from .routes import blp, shares_blp

__all__ = ["blp", "shares_blp"]
