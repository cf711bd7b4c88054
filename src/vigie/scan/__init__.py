"""Bulk scanning of files, folders and archives: worker processes, a resumable journal, clusters, reports."""
