"""Internals of rnnkit's Keras-shaped training API (layers, models, fit loop, saving).

The public names live in ``rnnkit.layers``, ``rnnkit.models``, ``rnnkit.losses``,
``rnnkit.optimizers``, ``rnnkit.callbacks``, ``rnnkit.metrics``, ``rnnkit.utils`` and
``rnnkit.data``; this package holds the pieces they are built from.
"""
