"""nanoquote.host"""
