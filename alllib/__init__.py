"""alllib: the helper package of the book on classifying acute lymphoblastic leukemia cells.

One module per pipeline stage, each introduced in its own chapter:
``data`` and ``synthetic`` (datasets), ``preprocessing``, ``segmentation``, ``augmentation``,
``features``, ``classifiers``, ``protocols``, ``metrics``, ``reported`` and ``plots``.
"""
__version__ = "0.1.0"
