"""All figures, registered in the order their passes run and JSON lists their fields: importing
this package fills `FIGURES` (figure.py declares what a figure is)."""

from archcalc.figures import depth, flops, memory, params, receptive_field, shapes, training
from archcalc.figures.figure import FIGURES, Figure, Total, register

register(shapes.SHAPES, params.PARAMS, flops.FLOPS, receptive_field.RECEPTIVE_FIELD, memory.MEMORY, depth.DEPTH, training.TRAINING)

__all__ = ["FIGURES", "Figure", "Total"]
