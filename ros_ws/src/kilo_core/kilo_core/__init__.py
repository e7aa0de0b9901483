"""KILO.7 robot core."""
