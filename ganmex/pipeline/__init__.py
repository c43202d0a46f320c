"""Stages, their artifacts, and the runner that wires them."""
