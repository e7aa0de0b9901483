"""Developer tools: the local stack launcher and the live truth view."""
