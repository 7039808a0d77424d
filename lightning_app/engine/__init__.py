"""How a run is made fast: the fast path (FastPath, its optimizer steps, the direct Adam update), the feature
cache and its feature pass (an inference copy of the backbone, onnxruntime), host tuning."""
