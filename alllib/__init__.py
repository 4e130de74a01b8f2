"""alllib: the helper package of the book on classifying acute lymphoblastic leukemia cells.

One module per pipeline stage, each introduced in its own chapter:

- ``data``, ``synthetic``: datasets (ALL-IDB2, C-NMC-2019, synthetic smears) and image reading
- ``preprocessing``: LAB colour, resizing, normalisation
- ``segmentation``: K-means on the A channel and an Otsu baseline
- ``augmentation``: the paper's augmentation and class balancing, with provenance
- ``features``, ``efficientnet_lite``: frozen ImageNet backbones, streamed and cached
- ``classifiers``, ``svm_search``: SVM / RF / XGBoost, and the exact precomputed-kernel SVM grid search
- ``protocols``, ``metrics``: the paper's and the honest protocol, metrics and intervals
- ``reported``, ``plots``, ``display``: the paper's figures beside ours, the book's figures, readable
  tables and sentences written from a run's numbers
- ``chapter``, ``runner``: what a chapter needs (parameters, data, banner, results), and the runner
  that executes the chapters and builds the book
- ``models``, ``cli``: saved classifiers, the command line
- ``settings``: settings read from the environment, checked where they are read
"""
__version__ = "0.1.0"
