# A stand-in for a real step: sleeps 0.2 to 0.9 s, then prints a JSON result.
n=$1
sleep "0.$((2 + (n * 7) % 8))"
if [ "$n" = 13 ]; then
  echo "step 13: input shard 13 is corrupt (bad magic number)" >&2
  exit 2
fi
case $n in
5 | 11 | 17)
  if [ "$MAPFLOW_ATTEMPT" = 1 ]; then
    echo "step $n: connection reset by peer" >&2
    exit 1
  fi
  ;;
esac
echo "{\"n\": $n, \"loss\": 0.$((90 - n))}"
