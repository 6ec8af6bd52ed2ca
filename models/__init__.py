"""A real model, loaded offline (:mod:`.load`), and the sentences it embeds (:mod:`.sentences`):
below both ``sim/`` (hardware in the loop) and ``flows/`` (accuracy), which import them."""
