"""What the stages hand each other, and how to read it: the formats of `data/raw`
(`raw.py`), `data/resized` (`resized.py`) and the shard folder (`shards.py`,
`tfrecords.py`), the LAB colour space, safe image decoding, split names, and the
tf.data pipelines that feed training and evaluation. A reader of a stage's output
imports this, never the stage that wrote it."""
