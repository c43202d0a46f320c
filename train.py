"""Thin shim: `python train.py [overrides]` == `ganmex-train [overrides]`."""

from ganmex.cli import train

if __name__ == "__main__":
    train()
