"""The data-preparation stages: `download` (a source -> data/raw), `resize`
(-> data/resized) and `shard` (-> LAB TFRecord shards), with the image sources
they read from (`sources/`). Nothing downstream of the shards imports this."""
