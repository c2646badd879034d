"""`sparse-mm serve`: an HTTP API over `indexing.searcher.Searcher` (the search path `sparse-mm
query` uses) and a static search page. Depends on indexing; indexing never imports it."""
