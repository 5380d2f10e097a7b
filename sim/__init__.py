"""nanoquote.sim"""
