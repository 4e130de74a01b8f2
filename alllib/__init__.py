"""alllib: the helper package of the book on classifying acute lymphoblastic leukemia cells.

Two layers. The **core** is what any script or course lab can use; the **book's layer**
(:mod:`alllib.book`) is what only the chapters need. The core never imports the book's layer
(a test checks the import graph), and :mod:`alllib.cli` is the one module that uses both.

Core:

- :mod:`alllib.paths`: every location (data, cache, results, Keras' weights) and its environment variable
- :mod:`alllib.constraints`: what each parameter may be, declared once, and the one check of it
- :mod:`alllib.data`: reading images, the :class:`~alllib.data.Dataset`, ALL-IDB2 with its slides and
  duplicates, C-NMC-2019, the synthetic smears
- :mod:`alllib.preprocessing`, :mod:`alllib.segmentation`, :mod:`alllib.augmentation`: the image stages
  (LAB colour, K-means on the A channel, the paper's augmentation, test-time views)
- :mod:`alllib.features`: the backbones and their weights, the feature store, extraction
- :mod:`alllib.learn`: classifiers, the one cross-validation engine, the protocols, metrics,
  fine-tuning, model files
- :mod:`alllib.attribution`: Grad-CAM through the real SVM, occlusion, the nucleus share, the maps'
  sanity checks and the study that runs them on grouped folds

Book's layer: :mod:`alllib.book` (chapter, runner, lab, studies, prose, reported figures, plots).
Where to add a chapter, a candidate or a backbone: CONTRIBUTING.md.
"""
__version__ = "0.2.0"
