"""How well are parts labeled? Each dev set (PSB, human_seg, pm) against the nearest-neighbour floor."""
