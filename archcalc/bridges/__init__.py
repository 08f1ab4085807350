"""Bridges to other frameworks: import a PyTorch model or an ONNX file as a spec, export a spec
as PyTorch source. torch and onnx are optional extras, imported only by these modules."""
