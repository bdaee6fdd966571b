"""The outermost layer, in parts: cli/, demo/, processes/, wiring/ (the composition root), workers/, platforms/ (the
chat platforms), adapters/ (outside services), over settings.py and logs.py. README's architecture section maps it."""
