"""nanoquote.hw"""
