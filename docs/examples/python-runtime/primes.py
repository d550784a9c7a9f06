# Prints the primes below the number given as the first argument: a
# script to copy into a sandbox and run there with the sandbox's python3.
import sys

limit = int(sys.argv[1])
sieve = [True] * limit
primes = []
for n in range(2, limit):
    if sieve[n]:
        primes.append(n)
        for multiple in range(n * n, limit, n):
            sieve[multiple] = False
print(" ".join(map(str, primes)))
