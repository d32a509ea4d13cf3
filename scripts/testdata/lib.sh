# shellcheck shell=bash
# Helpers for scripts/make-testdata: throw-away registries on 127.0.0.1 and a
# few raw registry API calls made with curl.  Sourced, not executed.
#
# Expects: WORK (a scratch dir), HERE (scripts/testdata), GEN (output dir of
# gen-images.py: GEN/layout is an OCI layout, GEN/images.json its index).

declare -A REG_PID=() REG_ADDR=()

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'make-testdata: %s\n' "$*" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME ROOT [REMOTEURL]: run docker-registry on a free
# loopback port with ROOT as storage root; with REMOTEURL, as a pull-through
# cache of it.  Sets REG_ADDR[NAME] (host:port).
start_registry() {
	local name=$1 root=$2 remote=${3:-} port dir proxy="" i
	dir=$WORK/reg-$name
	mkdir -p "$dir" "$root"
	port=$(free_port)
	if [[ -n $remote ]]; then
		proxy=$(printf 'proxy:\n  remoteurl: %s' "$remote")
	fi
	python3 - "$HERE/registry-config.yml.in" "$dir/config.yml" \
		"127.0.0.1:$port" "$root" "$proxy" <<-'EOF'
		import sys
		src, dst, addr, root, proxy = sys.argv[1:]
		t = open(src).read()
		t = t.replace("@ADDR@", addr).replace("@ROOT@", root).replace("@PROXY@", proxy)
		open(dst, "w").write(t)
	EOF
	docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	REG_PID[$name]=$!
	REG_ADDR[$name]=127.0.0.1:$port
	for ((i = 0; i < 100; i++)); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
			log "registry $name up on 127.0.0.1:$port (root $root)"
			return 0
		fi
		kill -0 "${REG_PID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/registry.log" >&2
	die "registry $name did not start"
}

stop_registry() {
	local name=$1 pid=${REG_PID[$1]:-}
	[[ -n $pid ]] || return 0
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "REG_PID[$name]"
	log "registry $name stopped"
}

stop_all_registries() {
	local n
	for n in "${!REG_PID[@]}"; do stop_registry "$n"; done
}

# skopeo with the flags every call here needs.
sko() {
	skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false "$@"
}

# img FIELD...: read GEN/images.json, e.g. `img images schema2-a docker digest`.
img() {
	python3 - "$GEN/images.json" "$@" <<-'EOF'
		import json, sys
		v = json.load(open(sys.argv[1]))
		for k in sys.argv[2:]:
		    v = v[int(k)] if isinstance(v, list) else v[k]
		print(json.dumps(v) if isinstance(v, (dict, list)) else v)
	EOF
}

# layout_blob DIGEST: path of a blob in the generated OCI layout.
layout_blob() { printf '%s/layout/blobs/sha256/%s' "$GEN" "${1#sha256:}"; }

# abs_location URL-OR-PATH ADDR
abs_location() {
	case $1 in
	http://* | https://*) printf '%s' "$1" ;;
	*) printf 'http://%s%s' "$2" "$1" ;;
	esac
}

# upload_blob ADDR REPO FILE DIGEST: monolithic upload (POST, then PUT with
# the digest), skipped when the repository already has the blob.
upload_blob() {
	local addr=$1 repo=$2 file=$3 digest=$4 loc code
	code=$(curl -sS -o /dev/null -w '%{http_code}' -I "http://$addr/v2/$repo/blobs/$digest")
	[[ $code == 200 ]] && return 0
	loc=$(curl -sS -o /dev/null -D - -X POST "http://$addr/v2/$repo/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	[[ -n $loc ]] || die "POST upload for $repo gave no Location"
	loc=$(abs_location "$loc" "$addr")
	case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
	code=$(curl -sS -o "$WORK/last-body" -w '%{http_code}' -X PUT \
		-H 'Content-Type: application/octet-stream' --data-binary "@$file" "$loc")
	[[ $code == 201 ]] || die "blob PUT $repo $digest: HTTP $code $(cat "$WORK/last-body")"
}

# put_manifest ADDR REPO REF FILE CONTENT-TYPE: prints the HTTP status; the
# response body is left in $WORK/last-body, the headers in $WORK/last-headers.
put_manifest() {
	curl -sS -o "$WORK/last-body" -D "$WORK/last-headers" -w '%{http_code}' -X PUT \
		-H "Content-Type: $5" --data-binary "@$4" "http://$1/v2/$2/manifests/$3"
}

# push_image_curl ADDR REPO IMAGE KIND REF: upload IMAGE's config and layers
# and PUT its manifest (KIND docker or oci) as REF (a tag, or @digest to PUT by its digest).
push_image_curl() {
	local addr=$1 repo=$2 image=$3 kind=$4 ref=$5 d n i mt code
	d=$(img images "$image" config digest)
	upload_blob "$addr" "$repo" "$(layout_blob "$d")" "$d"
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["images"][sys.argv[2]]["layers"]))' "$GEN/images.json" "$image")
	for ((i = 0; i < n; i++)); do
		d=$(img images "$image" layers "$i" digest)
		upload_blob "$addr" "$repo" "$(layout_blob "$d")" "$d"
	done
	d=$(img images "$image" "$kind" digest)
	if [[ $kind == docker ]]; then
		mt=application/vnd.docker.distribution.manifest.v2+json
	else
		mt=application/vnd.oci.image.manifest.v1+json
	fi
	[[ $ref == @digest ]] && ref=$d
	code=$(put_manifest "$addr" "$repo" "$ref" "$(layout_blob "$d")" "$mt")
	[[ $code == 201 ]] || die "manifest PUT $repo:$ref: HTTP $code $(cat "$WORK/last-body")"
	printf '%s' "$d"
}

# get_manifest_status ADDR REPO REF ACCEPT: HTTP status of a manifest GET.
# Always send an Accept header: a tag GET without the schema2 type makes
# 2.8 down-convert to schema1 and write into the store.
get_manifest_status() {
	curl -sS -o "$WORK/last-body" -D "$WORK/last-headers" -w '%{http_code}' \
		-H "Accept: $4" "http://$1/v2/$2/manifests/$3"
}

ACCEPT_ALL='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws'

# refs_of FILE: print "blob DIGEST" / "manifest DIGEST" for what a manifest
# references (schema2/OCI config and layers, schema1 fsLayers, list children).
refs_of() {
	python3 - "$1" <<-'EOF'
		import json, sys
		try:
		    m = json.load(open(sys.argv[1]))
		except Exception:
		    sys.exit(0)
		seen = set()
		def out(kind, d):
		    if d not in seen:
		        seen.add(d)
		        print(kind, d)
		if "config" in m:
		    out("blob", m["config"]["digest"])
		for l in m.get("layers", []):
		    out("blob", l["digest"])
		for l in m.get("fsLayers", []):
		    out("blob", l["blobSum"])
		for c in m.get("manifests", []):
		    out("manifest", c["digest"])
	EOF
}

short() { printf '%s…' "${1:0:19}"; }

# probe_tree LABEL ROOT [nowalk]: run the real registry and its garbage
# collector (dry run) on a scratch copy of ROOT and print one markdown item
# saying what they did.  With nowalk, skip the catalog and GC (a symlink to
# /tmp would make them walk the whole of /tmp).
probe_tree() {
	local label=$1 src=$2 nowalk=${3:-} id=probe-${1//\//-} copy A r t code kind d bad line cfg rc mode
	copy=$WORK/$id
	cp -a "$src" "$copy"
	start_registry "$id" "$copy" 2>/dev/null
	A=${REG_ADDR[$id]}
	line="- \`$label\`:"
	[[ -n $nowalk ]] || line+=" catalog \`$(curl -sS "http://$A/v2/_catalog")\`;"
	while read -r r; do
		[[ -d $copy/docker/registry/v2/repositories/$r/_manifests/tags ]] || continue
		line+=" tags list of \`$r\`: HTTP $(curl -sS -o "$WORK/last-body" -w '%{http_code}' "http://$A/v2/$r/tags/list") \`$(tr -d '\n' <"$WORK/last-body" | cut -c1-160)\`;"
		for t in $(cd "$copy/docker/registry/v2/repositories/$r/_manifests/tags" && ls); do
			code=$(get_manifest_status "$A" "$r" "$t" "$ACCEPT_ALL")
			line+=" GET \`$r:$t\` → $code"
			if [[ $code != 200 ]]; then
				line+=" \`$(tr -d '\n' <"$WORK/last-body" | cut -c1-200)\`;"
				continue
			fi
			cp "$WORK/last-body" "$WORK/probe-manifest"
			bad=""
			while read -r kind d; do
				if [[ $kind == blob ]]; then
					code=$(curl -sS -o /dev/null -w '%{http_code}' -I "http://$A/v2/$r/blobs/$d")
				else
					code=$(get_manifest_status "$A" "$r" "$d" "$ACCEPT_ALL")
				fi
				[[ $code == 200 ]] || bad+="${bad:+, }$kind \`$(short "$d")\` → $code"
			done < <(refs_of "$WORK/probe-manifest")
			line+=" (references: ${bad:-all 200});"
		done
	done < <(cd "$copy/docker/registry/v2/repositories" && find . -name _manifests -type d -prune | sed 's|^\./||; s|/_manifests$||' | sort)
	stop_registry "$id" 2>/dev/null
	if [[ -z $nowalk ]]; then
		cfg=$WORK/reg-$id/config.yml
		for mode in "" --delete-untagged; do
			rc=0
			docker-registry garbage-collect --dry-run $mode "$cfg" >"$WORK/gc.out" 2>"$WORK/gc.err" || rc=$?
			if [[ $rc == 0 ]]; then
				line+=" GC dry-run${mode:+ $mode}: \`$(grep 'blobs marked' "$WORK/gc.out" | tail -1)\`"
				d=$(grep -c '^manifest eligible' "$WORK/gc.out" || true)
				((d == 0)) || line+=" (manifests: $(sed -n 's/^manifest eligible for deletion: //p' "$WORK/gc.out" | while read -r x; do printf '`%s` ' "$(short "$x")"; done | sed 's/ $//'))"
				line+=";"
			else
				line+=" GC dry-run${mode:+ $mode}: ABORTS (exit $rc) \`$(grep -v '^$' "$WORK/gc.err" | tail -1 | sed "s|$copy|<root>|g" | cut -c1-240)\`;"
			fi
		done
	fi
	printf '%s\n' "${line%;}."
}
