package maintenance

// SetCopyCacheMax bounds both of Copy's caches to n entries until the
// returned function restores the defaults.
func SetCopyCacheMax(n int) (restore func()) {
	blobs, trees := copyBlobCacheMax, copyTreeCacheMax
	copyBlobCacheMax, copyTreeCacheMax = n, n
	return func() { copyBlobCacheMax, copyTreeCacheMax = blobs, trees }
}
