"""What does training buy (real labels, held-out categories), and how fast does it run?"""
