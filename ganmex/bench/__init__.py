"""Benchmarks and measurements behind `scripts/`: each script is an argument parser plus one call here.

Like pipeline/, this layer wires the lower ones together (data, models, explain, metrics, report); nothing
below imports it. Each module times or measures the real objects a run uses, never a copy of them.
"""
