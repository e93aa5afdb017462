"""Do the paper's tables (1, 3, 4, 5) and its claims about the teacher hold here?"""
