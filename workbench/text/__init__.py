"""Text to model inputs: the original WordPiece algorithm (Python, with character offsets), the `tf.data`
tokenizer built on keras-hub's, and the packing of one or two segments into `[CLS] A [SEP] B [SEP]` inputs."""
