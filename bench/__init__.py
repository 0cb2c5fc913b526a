"""Benchmark harness: rnnkit against PyTorch, ONNX Runtime and Keras (see README.md)."""
