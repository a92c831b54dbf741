"""creditdb: an SME credit-risk database with a rating model and guarantee pricing."""

__version__ = "0.1.0"
