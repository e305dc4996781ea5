"""Pure picture work used live and by training: the preprocessing vocabulary, segmentation, stillness."""
