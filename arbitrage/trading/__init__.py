"""trading"""
