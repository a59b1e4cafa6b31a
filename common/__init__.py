"""The bottom layer every other package uses, importing nothing of ours: the error types users see
(:mod:`.errors`), files written whole or not at all (:mod:`.atomic`), and the Keras runtime settings
a model trains under (:mod:`.runtime`)."""
