// The secure channel layer.
