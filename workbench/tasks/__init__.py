"""The benchmarks of the paper behind one `Task` interface: GLUE (+ AX, XNLI), SQuAD v1.1/v2.0, SWAG,
CoNLL-2003; their official metrics and the download of their official files."""
