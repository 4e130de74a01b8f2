"""The book's layer: what only the chapters need. The core library never imports it.

- :mod:`~alllib.book.chapter`: a chapter's parameters, dataset, backbone, banner and results
- :mod:`~alllib.book.runner`: executes the chapters with papermill
- :mod:`~alllib.book.build`: builds the HTML book from the executed chapters
- :mod:`~alllib.book.lab`: the student edition and its checks
- :mod:`~alllib.book.studies`: the chapters' studies (protocols side by side, layers)
- :mod:`~alllib.book.prose`: tables and sentences written from a run's numbers
- :mod:`~alllib.book.reported`: the paper's reported figures beside ours
- :mod:`~alllib.book.plots`: the book's figures
"""
