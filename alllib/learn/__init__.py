"""Learning and judging: classifiers and the exact SVM grid search, the one cross-validation engine
(:mod:`alllib.learn.evaluation`), the paper's and the honest protocol, metrics with their
intervals and tests, verdicts that hold when nothing differs, candidates, fine-tuning, and model
files.

The modules, each imported by its full name (``from alllib.learn.protocols import honest_protocol``):

- :mod:`~alllib.learn.classifiers`, :mod:`~alllib.learn.svm_search`: SVM / random forest / XGBoost
  with their grids, and the precomputed-kernel SVM search
- :mod:`~alllib.learn.evaluation`: grouped folds with spawned seeds, :class:`~alllib.learn.evaluation.ProtocolResult`
- :mod:`~alllib.learn.protocols`: the paper's protocol, the honest one, the leak audit, the probes
- :mod:`~alllib.learn.metrics`: metrics, intervals, the grouped bootstrap and the corrected t-test
- :mod:`~alllib.learn.verdicts`: "better", "worse" or "could not tell", calibrated by simulation
- :mod:`~alllib.learn.candidates`: what raises an honest score, candidates paired on the same folds
- :mod:`~alllib.learn.finetune`: EfficientNet-Lite0 fine-tuned end to end
- :mod:`~alllib.learn.training`: train an image classifier and say what it is worth for a new patient
- :mod:`~alllib.learn.modelfile`: save and load a checked model file, as untrusted input
- :mod:`~alllib.learn.familiarity`: is an input like the training images?
- :mod:`~alllib.learn.predict`: label image files, one call per person, a model described
"""
