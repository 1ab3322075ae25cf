"""Research code of this repository, outside the installed `s3ft` package: what was used to build the
artifacts s3ft ships, kept runnable and tested from the repository root (`python -m research.world.build DIR`).
It may import `s3ft`; `s3ft` never imports it."""
