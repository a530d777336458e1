package maintenance

// SetCopyCacheMax bounds Copy's caches to n entries until the returned
// function restores the default.
func SetCopyCacheMax(n int) (restore func()) {
	old := copyCacheMax
	copyCacheMax = n
	return func() { copyCacheMax = old }
}
