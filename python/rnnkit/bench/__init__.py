"""Benchmarking rnnkit against PyTorch, ONNX Runtime and Keras.

- ``python -m rnnkit.bench`` (the ``rnnkit-bench`` command, :mod:`rnnkit.bench.cli`): time one
  shape, or a model file, through rnnkit and every installed peer, paired in one process.
- :mod:`rnnkit.bench.suite` (``bench/run.py`` in a source checkout): the suite of cases, one
  worker process per (framework, threads) (:mod:`rnnkit.bench.worker`), with a markdown
  report and a chart (:mod:`rnnkit.bench.report`).

The pieces both share: the cases and their seeded weights (:mod:`~rnnkit.bench.cases`), one
adapter per framework (:mod:`~rnnkit.bench.peers`), reference outputs and the error measure
(:mod:`~rnnkit.bench.reference`), timing (:mod:`~rnnkit.bench.timing`) and the machine's
description and load (:mod:`~rnnkit.bench.machine`). numpy is the only requirement; each
peer's framework is imported only when that peer runs.
"""
