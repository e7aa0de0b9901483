from setuptools import find_packages, setup

package_name = 'kilo_core'

setup(
    name=package_name,
    version='0.2.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['schemas/*.json', 'config/*.yaml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', ['kilo_core/config/kilo.yaml']),
    ],
    install_requires=['setuptools', 'PyYAML', 'pigpio', 'paho-mqtt>=1.6'],
    zip_safe=True,
    maintainer='KILO.7 developers',
    maintainer_email='dev@kilo7.example.org',
    description='KILO.7 robot core: Safety Gate, Control PWM, kill relay and MQTT bridge nodes.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'safety_gate = kilo_core.safety_gate:main',
            'control_pwm = kilo_core.control_pwm:main',
            'relay_kill = kilo_core.relay_kill:main',
            'mqtt_bridge = kilo_core.mqtt_bridge:main',
            'kilo7 = kilo_core.tools.cli:main',
        ],
    },
)
