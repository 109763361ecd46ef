"""Monitoring: drift of new batches against the training snapshot a model was trained on."""
