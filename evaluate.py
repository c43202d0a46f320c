"""Thin shim: `python evaluate.py [overrides]` == `ganmex-evaluate [overrides]`."""

from ganmex.cli import evaluate

if __name__ == "__main__":
    evaluate()
