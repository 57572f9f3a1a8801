"""gpt-tui: train a small GPT from scratch in your terminal."""
__version__ = "0.1.0"
