# shellcheck shell=bash
# Builds the Debian package for a test; sourced. The caller sets `build`
# (the build directory given to the test), `src` (the source tree) and
# `dir` (a fresh temp directory) and has fail(). package_build leaves the
# .deb's path in `deb` and its version in `version`.

# In BUILD_DIR when it installs under /usr (what a package needs), else in
# a build directory of its own under $dir.
package_build() {
	local prefix
	prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
	if [ "$prefix" != /usr ]; then
		echo "$build installs under $prefix: the package is built in a build directory of its own"
		cmake -S "$src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
			-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
		build=$dir/build
	fi
	cmake --build "$build" --target basalt_man basalt_changelog >"$dir/build.log" 2>&1 ||
		fail "building the programs and man pages: $(tail -20 "$dir/build.log")"
	(cd "$build" && cpack -G DEB -B "$dir/out") >"$dir/cpack.log" 2>&1 ||
		fail "cpack: $(cat "$dir/cpack.log")"
	deb=$(ls "$dir"/out/basalt_*.deb)
	version=$(dpkg-deb -f "$deb" Version)
	echo "built $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
}
