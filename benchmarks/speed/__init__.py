"""How long does bipart take, and in how much memory (the README's example, a 100k-face GLB, retrieval)?"""
