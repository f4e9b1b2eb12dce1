"""ArtStore: the `artstore` command, the local stack (`artstore.stack`) and `artstore dev`: the top
layer (the shared settings, logging and serving are in `base`)."""
