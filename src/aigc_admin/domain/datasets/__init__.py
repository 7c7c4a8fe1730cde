"""Datasets of chat samples: formats (messages, alpaca, sharegpt), CRUD, import and export."""
