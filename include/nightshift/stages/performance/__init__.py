"""Live performance: realized once labels arrive (`realized`), estimated before (`estimate`, CBPE), judged (`judge`)."""
